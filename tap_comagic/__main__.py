from tap_comagic.tap import main

main()
