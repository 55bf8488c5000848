"""The built-in modules, one file each; :mod:`gxo.modules.registry` imports them on use."""
