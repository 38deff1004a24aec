"""Board-family profiles (TOML), shipped as package data (edgeprof.device_profiles)."""
