"""Batch labelling of files: ``counterpoint label INPUT -o OUTPUT``.

Each output row is the input row unchanged plus ``pred_label``, ``score_<label>`` for every schema label,
``flagged`` and ``model_version``. Labels come from the same predictor as the service (``load_predictor`` +
``Predictor.predict``), so a text gets the same scores either way. Formats: JSONL, CSV and Parquet in and out (from
the extension; ``--format`` names the format of a path whose extension does not say); Hugging Face ``datasets``
folders in.

Nothing is lost. A row that cannot be labelled (invalid JSON, bytes that are not UTF-8, a missing, null, empty or
non-string text, a row that already carries prediction columns) goes to ``OUTPUT.errors.jsonl`` as
``{"line", "id", "error"}`` (never the text) and the job goes on. Rows read = rows labelled + rows in errors.

Crash safety. The job streams the input in chunks (``chunk_rows``; by default 16 inference batches). Each chunk is
written as a part file in ``OUTPUT.parts/`` (temporary name, fsync, atomic rename), then ``checkpoint.json`` there
is replaced atomically with the new row count. A crash or ``kill -9`` at any point leaves at most one part that no
checkpoint counts; ``--resume`` deletes it, checks that the input (path, size, mtime), model (SHA-256) and options
are the ones the checkpoint recorded, and reads on from the recorded row, so every input row ends up in the output
or the errors file exactly once. At the end the parts are joined into OUTPUT and ``OUTPUT.errors.jsonl`` (temporary
file + rename) and the parts folder is removed. Memory stays flat: one chunk of rows is held at a time.

Engines: ``local`` (this process) and ``ray`` (``serving.batch.ray_engine``: a Ray Data pipeline whose actor pool
holds the model; the same reader, validation, parts and checkpoint on the driver).

Modules, imported one way: ``records`` (prediction columns, row checks, input inspection) <- ``checkpoint`` (parts,
checkpoint, final output) and ``engines`` (local engine) <- ``ray_engine`` <- ``job`` (``run_label_job``).

Int8 note: the default ONNX int8 backend picks activation scales per inference batch, so scores can differ by
about 1e-3 from a one-text service call; fp32, torch and linear backends give identical scores.
"""

from serving.batch.checkpoint import CHECKPOINT_VERSION, JobPaths, write_atomic
from serving.batch.engines import local_chunks, predict_records, read_checked
from serving.batch.job import BATCHES_PER_PART, ENGINES, LabelSummary, effective_backend, run_label_job
from serving.batch.records import (FLAGGED, MODEL_VERSION, OUTPUT_FORMATS, PRED_LABEL, PREFLIGHT_ROWS, REVIEW,
                                   BatchError, InputInfo, Outcome, chunked, inspect_input, prediction_columns,
                                   prediction_record, score_column, validate_row)

__all__ = ["BATCHES_PER_PART", "CHECKPOINT_VERSION", "ENGINES", "FLAGGED", "MODEL_VERSION", "OUTPUT_FORMATS",
           "PRED_LABEL", "PREFLIGHT_ROWS", "REVIEW", "BatchError", "InputInfo", "JobPaths", "LabelSummary", "Outcome",
           "chunked", "effective_backend", "inspect_input", "local_chunks", "predict_records", "prediction_columns",
           "prediction_record", "read_checked", "run_label_job", "score_column", "validate_row", "write_atomic"]
