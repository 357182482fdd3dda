"""The prepared avatar: idle cycle frames with per-frame face geometry, found offline."""
