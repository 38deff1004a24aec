"""Repro bundles: one .tar.gz with everything needed to audit stored results or measure them again, and the
import that adds a bundle's results to another store.

    edgeprof-bundle/manifest.json          format, who made it, one entry per result and per model file, and
                                           the sha256 and size of every other member
    edgeprof-bundle/results/<id>.json      a result as `results show --json` gives it, without the raw log:
                                           figures, method, state (power mode, clocks, versions), board facts,
                                           settings, commands with exit status and duration, prototxt diff
    edgeprof-bundle/logs/<id>.log          its raw log
    edgeprof-bundle/models/<sha12>/<name>  each model file (prototxt, TorchScript, ONNX export) found on this
                                           host with the sha256 the results record, up to a size limit;
                                           larger or missing ones are listed in the manifest with their hash
    edgeprof-bundle/reproduce.sh           `edgeprof measure` commands that rerun the same items

`write_bundle` (write.py) makes one, `read_bundle` / `import_bundle` (read.py) check one member by member
before anything is written. Results are recognized across stores by their identity (below), so importing a
bundle twice, or into the store it came from, adds nothing the second time.
"""
from .layout import FORMAT, FORMAT_VERSION, MODEL_FILE_LIMIT_MB, BundleError, identity
from .read import ImportReport, import_bundle, read_bundle
from .write import write_bundle

__all__ = ["BundleError", "FORMAT", "FORMAT_VERSION", "ImportReport", "MODEL_FILE_LIMIT_MB", "identity",
           "import_bundle", "read_bundle", "write_bundle"]
