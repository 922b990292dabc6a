"""Image I/O, colour, resizing, degradations, sub-images, and dataset loaders (numpy in, numpy out)."""
