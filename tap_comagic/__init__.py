"""Singer tap for the CoMagic (UIS, CallGear) Data API reports."""
