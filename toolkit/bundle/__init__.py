"""Evidence bundles: a run directory sealed with manifests and a hash-chained custody log (docs/bundle.md).

``seal_run`` writes the manifests when a run ends; ``verify_bundle`` proves a run directory (or its
exported zip) is what was collected; ``export_bundle`` writes a reproducible zip; ``record_access``
appends one custody entry when iisfleet reads a sealed run again.
"""

from toolkit.bundle.custody import CUSTODY_FILE, append_entry, record_access
from toolkit.bundle.export import export_bundle, opened_bundle
from toolkit.bundle.manifest import MANIFEST_FILE, seal_run
from toolkit.bundle.verify import Problem, verify_bundle

__all__ = ["CUSTODY_FILE", "MANIFEST_FILE", "Problem", "append_entry", "export_bundle", "opened_bundle",
           "record_access", "seal_run", "verify_bundle"]
