"""Small helpers with no gxo dependencies (level 0): any layer may use them."""
