"""Deploy prototxts of the catalog models, shipped as package data (edgeprof.prototxts)."""
