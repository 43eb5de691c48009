"""GIF search providers (Tenor, GIPHY): one file each, found through `registry`."""
