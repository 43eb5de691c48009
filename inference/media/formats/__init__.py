"""The output formats, one module each (`registry.py` lists them): what a format's quality
ladder is, how ffmpeg (or our own writer) encodes it, and how its file is labelled."""
