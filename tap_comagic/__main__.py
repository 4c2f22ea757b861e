from tap_comagic.tap import TapCoMagic

TapCoMagic.cli()
