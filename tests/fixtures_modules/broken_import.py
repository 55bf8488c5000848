"""A plugin module whose import fails, for the registry's error-wording test."""

raise ImportError("the plugin needs libfoo, which is not installed")
