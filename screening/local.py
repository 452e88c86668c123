"""The local engine: stream an extract in chunks of whole patients, screen each chunk, rank, summarise.

Memory stays bounded by the chunk: rows are read batch by batch. When the input is sorted by
``patient_id`` (as extracts usually are, and as the generator writes them) chunks are cut at patient
boundaries on the fly. When it is not, a first pass files each row into one of a few bucket files by a
hash of its patient_id, and each bucket (a set of whole patients) is then screened on its own.

Output directory: ``patients/part-00000.parquet`` (one row per patient, with ``rank``),
``summary.json`` and ``summary.txt``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from iatro.analysis import Engine
from iatro.errors import FieldError, InputError
from screening.allocator import batch_memory
from screening.batch import Screener
from screening.derive import INPUT_COLUMNS, check_columns, last_date
from screening.options import ScreeningOptions
from screening.output_schema import ENCODED_SCHEMA, OUTPUT_SCHEMA, RANKED_SCHEMA
from screening.summary import Aggregates, aggregate, metadata, summarise, write

Progress = Callable[[int], None]  # called with the number of patients just screened
_TEXT_COLUMNS = ("patient_id", "cip13", "cis", "atc", "sex", "cim10")
ROWS_PER_PATIENT = 60  # rough size of a patient in rows, to size bucket files
_ROW_GROUP = 65_536  # patients per row group of the output (at least)


class _Unsorted(Exception):
    """Raised inside the streaming pass when patient ids go backwards."""


def open_input(path: Path) -> ds.Dataset:
    if not path.exists():
        raise FieldError("input", f"{path} does not exist")
    csv = path.suffix.lower() == ".csv" or (path.is_dir() and any(path.glob("*.csv")))
    if csv:
        names = pacsv.open_csv(path if path.is_file() else next(path.glob("*.csv"))).schema.names
        fmt = ds.CsvFileFormat(
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in _TEXT_COLUMNS if c in names}
            )
        )
        dataset = ds.dataset(path, format=fmt)
    else:
        # Text columns are read as Arrow dictionaries: Parquet stores them dictionary-encoded, and
        # the screening reads each distinct value once (three times faster than decoding strings).
        fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(_TEXT_COLUMNS)))
        try:
            dataset = ds.dataset(path, format=fmt)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a Parquet or CSV extract ({exc})") from None
    check_columns(dataset.schema.names)
    return dataset


def _columns(dataset: ds.Dataset) -> list[str]:
    return [c for c in INPUT_COLUMNS if c in dataset.schema.names]


def _last_date_of_statistics(dataset: ds.Dataset) -> dt.date | None:
    """The last date of a Parquet extract read from its row groups' statistics, without a row.

    None when some row group has no date statistics (or the extract is not Parquet): the rows then
    tell. Parquet statistics of a date column are exact (the least and greatest value written).
    """
    found: dt.date | None = None
    for fragment in dataset.get_fragments():
        if not isinstance(fragment, ds.ParquetFileFragment):
            return None
        for row_group in fragment.row_groups:
            value = (row_group.statistics or {}).get("date", {}).get("max")
            if type(value) is not dt.date:  # absent, or not a date column (a datetime is a date too)
                return None
            found = value if found is None else max(found, value)
    return found


def reference_date(dataset: ds.Dataset, options: ScreeningOptions) -> ScreeningOptions:
    if options.as_of is not None:
        return options
    found = _last_date_of_statistics(dataset)
    if found is not None:
        return options.with_as_of(found)
    for batch in dataset.to_batches(columns=["date"]):
        value = last_date(pa.table({"date": batch.column(0)}))
        if value is not None and (found is None or value > found):
            found = value
    if found is None:
        raise FieldError("date", "no row has a date: the reference date cannot be set")
    return options.with_as_of(found)


def _runs(pid: pa.Array) -> tuple[npt.NDArray[np.int64], pa.Array]:
    """The first row of each run of equal patient ids of a batch, and each run's id (as text).

    Runs are found on dictionary indices (a Parquet text column is read as a dictionary); only one
    value per run is decoded, so that the checks below compare a few thousand strings, not every row.
    """
    encoded = pid if pa.types.is_dictionary(pid.type) else pc.dictionary_encode(pid)
    index = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    first = np.ones(len(index), dtype=bool)
    np.not_equal(index[1:], index[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    at = index[starts]
    ids = pc.cast(encoded.dictionary.take(pa.array(at, mask=at < 0)), pa.string())
    if len(ids) > 1:  # a dictionary may hold a value twice: neighbouring runs of one id are one run
        same = np.asarray(pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False), dtype=bool)
        if same.any():
            keep = np.concatenate(([True], ~same))
            starts, ids = starts[keep], ids.filter(pa.array(keep))
    return starts, ids


def _sorted_chunks(dataset: ds.Dataset, chunk_patients: int) -> Iterator[pa.Table]:
    """Chunks of whole patients from an input sorted by patient_id; raises _Unsorted otherwise."""
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_patients = 0
    last: str | None = None
    last_start = 0  # the row of the pending rows where the last patient's rows start
    # A short read-ahead: memory stays bounded by the chunk rather than by the scanner's prefetch.
    for batch in dataset.to_batches(columns=_columns(dataset), batch_readahead=2, fragment_readahead=1):
        if not batch.num_rows:
            continue
        pid = batch.column("patient_id")
        starts, ids = _runs(pid)
        if pid.null_count or ids.null_count:
            lengths = np.diff(np.append(starts, batch.num_rows))
            missing = int(lengths[np.asarray(ids.is_null().to_numpy(zero_copy_only=False), dtype=bool)].sum())
            raise FieldError("patient_id", f"{missing} row(s) without a patient_id")
        first = ids[0].as_py()
        if (last is not None and first < last) or (
            len(ids) > 1 and pc.any(pc.less(ids[1:], ids[:-1])).as_py()
        ):
            raise _Unsorted
        continues = last is not None and first == last  # the previous batch's last patient
        if not (continues and len(ids) == 1):
            last_start = pending_rows + int(starts[-1])
        last = ids[-1].as_py()
        pending.append(batch)
        pending_rows += batch.num_rows
        pending_patients += len(ids) - (1 if continues else 0)
        if pending_patients > chunk_patients and last_start > 0:
            # Cut before the last patient, whose rows may continue in the next batch.
            table = pa.Table.from_batches(pending)
            yield table.slice(0, last_start)
            pending = table.slice(last_start).to_batches()
            pending_rows, pending_patients, last_start = table.num_rows - last_start, 1, 0
    if pending:
        yield pa.Table.from_batches(pending)


def _bucketed_chunks(dataset: ds.Dataset, chunk_patients: int, workdir: Path) -> Iterator[pa.Table]:
    """Chunks of whole patients from any row order: bucket files by a hash of patient_id, then each."""
    rows = dataset.count_rows()
    buckets = max(1, math.ceil(rows / (chunk_patients * ROWS_PER_PATIENT)))
    columns = _columns(dataset)
    writers: dict[int, pq.ParquetWriter] = {}
    schema: pa.Schema | None = None
    try:
        for batch in dataset.to_batches(columns=columns, batch_readahead=2, fragment_readahead=1):
            table = pa.Table.from_batches([batch])
            if schema is None:
                schema = table.schema
            encoded = pc.dictionary_encode(pc.cast(table["patient_id"], pa.string()).combine_chunks())
            hashes = np.array(
                [zlib.crc32(str(v).encode()) % buckets for v in encoded.dictionary.to_pylist()],
                dtype=np.int64,
            )
            bucket_of = hashes[encoded.indices.to_numpy(zero_copy_only=False)]
            for b in np.unique(bucket_of):
                writer = writers.get(int(b))
                if writer is None:
                    writer = writers[int(b)] = pq.ParquetWriter(
                        str(workdir / f"bucket-{int(b)}.parquet"), schema
                    )
                writer.write_table(table.filter(pa.array(bucket_of == b)).cast(schema))
    finally:
        for writer in writers.values():
            writer.close()
    for b in sorted(writers):
        yield pq.read_table(workdir / f"bucket-{b}.parquet", read_dictionary=list(_TEXT_COLUMNS))


def _chunks(dataset: ds.Dataset, chunk_patients: int, workdir: Path) -> Iterator[tuple[pa.Table, bool]]:
    """(chunk, restart): restart is True on the first chunk after falling back to bucketing."""
    try:
        for chunk in _sorted_chunks(dataset, chunk_patients):
            yield chunk, False
        return
    except _Unsorted:
        pass
    first = True
    for chunk in _bucketed_chunks(dataset, chunk_patients, workdir):
        yield chunk, first
        first = False


# The work file holds each chunk's output rows until every patient is scored and can be ranked. An
# Arrow IPC stream compressed with LZ4 is written and read back for a fraction of Parquet's CPU. Its
# list columns carry their texts dictionary-encoded, as the screener builds them (ENCODED_SCHEMA),
# which keeps the file small (some 80 bytes a patient); they are decoded into the output file only.
_LISTS = frozenset(i for i, f in enumerate(OUTPUT_SCHEMA) if pa.types.is_list(f.type))


def _work_writer(path: Path) -> ipc.RecordBatchStreamWriter:
    options = ipc.IpcWriteOptions(compression="lz4", use_threads=False)
    return ipc.new_stream(str(path), ENCODED_SCHEMA, options=options)


def _output_columns(batch: pa.RecordBatch) -> list[pa.Array]:
    """Work rows back as the columns of OUTPUT_SCHEMA."""
    columns = list(batch.columns)
    for i in _LISTS:
        lists = columns[i]
        values = lists.values.dictionary.take(lists.values.indices)
        nulls = lists.is_null() if lists.null_count else None
        columns[i] = pa.ListArray.from_arrays(lists.offsets, values, mask=nulls)
    return columns


def _write_ranked(unranked: Path, path: Path, schema: pa.Schema) -> None:
    """The work file's rows with their rank, as Parquet row groups of some _ROW_GROUP patients."""
    keys = [OUTPUT_SCHEMA.get_field_index(name) for name in ("patient_id", "risk_score")]
    with pa.memory_map(str(unranked)) as source:
        reader = ipc.open_stream(source, options=ipc.IpcReadOptions(included_fields=keys))
        scored = pa.Table.from_batches(list(reader), schema=reader.schema)
    ranks = rank(scored)
    del scored
    with pa.memory_map(str(unranked)) as source, pq.ParquetWriter(str(path), schema) as final:
        start, pending = 0, []
        for batch in ipc.open_stream(source):
            n = batch.num_rows
            columns = [*_output_columns(batch), pa.array(ranks[start : start + n], pa.int64())]
            pending.append(pa.RecordBatch.from_arrays(columns, schema=schema))
            start += n
            if sum(b.num_rows for b in pending) >= _ROW_GROUP:
                final.write_table(pa.Table.from_batches(pending, schema=schema))
                pending = []
        if pending:
            final.write_table(pa.Table.from_batches(pending, schema=schema))


def rank(scored: pa.Table) -> npt.NDArray[np.int64]:
    """1 = highest ``risk_score``; ties ordered by ``patient_id`` so that the rank is deterministic.

    Arrow sorts the ids as UTF-8 bytes, which orders them as their code points: no id becomes a
    Python string.
    """
    keys = [("risk_score", "descending"), ("patient_id", "ascending")]
    order = pc.sort_indices(scored, sort_keys=keys).to_numpy()
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def screen_local(
    source: Path,
    out: Path,
    engine: Engine,
    options: ScreeningOptions,
    chunk_patients: int = 20_000,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Screen an extract into ``out``; returns the summary."""
    dataset = open_input(source)
    options = reference_date(dataset, options)
    screener = Screener(engine, options)
    with batch_memory():
        return _screen(dataset, out, screener, chunk_patients, progress)


def _screen(
    dataset: ds.Dataset, out: Path, screener: Screener, chunk_patients: int, progress: Progress | None
) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "patients"
    if parts.exists():
        shutil.rmtree(parts)
    parts.mkdir()
    meta = metadata(screener.engine.kb, screener.options)
    with tempfile.TemporaryDirectory(dir=out, prefix=".work-") as tmp:
        workdir = Path(tmp)
        unranked = workdir / "unranked.arrows"
        writer = _work_writer(unranked)
        totals = Aggregates()
        try:
            for chunk, restart in _chunks(dataset, chunk_patients, workdir):
                if restart:  # the input was not sorted: start over from the bucket files
                    writer.close()
                    writer = _work_writer(unranked)
                    totals = Aggregates()
                result = screener.screen(chunk, encoded_lists=True)
                writer.write_table(result)
                totals.add(aggregate(result))
                if progress is not None:
                    progress(result.num_rows)
        finally:
            writer.close()
        schema = RANKED_SCHEMA.with_metadata({"iatro.screening": json.dumps(meta, ensure_ascii=False)})
        _write_ranked(unranked, parts / "part-00000.parquet", schema)
    summary = summarise(totals, meta)
    write(out, summary)
    return summary
