"""Raw artefacts on the controller: files a collector streams in chunks, written to disk as they arrive,
verified per chunk and whole, resumable (docs/bundle.md, "Raw artefacts"; the host side:
docs/raw-artefacts.md).

``ArtefactReceiver`` consumes one step's output objects one at a time (the transports hand them over
through ``on_output``) and keeps only the chunk being written in memory; ``have_from_disk`` says what an
earlier, interrupted attempt left behind (the collector's ``Have`` parameter).
"""

from toolkit.artefacts.receive import (ARTEFACT_DIR, INDEX_FILE, RAW_ARTEFACT_COLLECTOR, ArtefactReceiver,
                                       have_from_disk, have_lines, read_index, streams_artefacts)

__all__ = ["ARTEFACT_DIR", "INDEX_FILE", "RAW_ARTEFACT_COLLECTOR", "ArtefactReceiver", "have_from_disk",
           "have_lines", "read_index", "streams_artefacts"]
