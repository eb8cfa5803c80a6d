"""``python -m pci check``: read every block of a warehouse file, on demand.

``pci run`` reads, before it writes, the next slice of the rolling scrub
(:func:`pci.core.preflight.check_before_writing`, ``rolling``): every block of the
warehouse is read once every few runs, at a cost per run that does not grow with
the warehouse. This command is the whole pass at once (the thorough level): after
restoring a backup, before copying the file elsewhere, or on a schedule of its
own (``0 3 * * 0 python -m pci check --warehouse W``). It takes the warehouse lock,
so it never runs beside a run, and writes nothing to the file.

Exit statuses: 0 intact; 2 no such warehouse; 4 held by a run (without ``--wait``)
or open for writing in another process; 6 an environment fault (an I/O error, a
lock file that cannot be written); 7 damaged (the file, what is wrong, how to
restore it).
"""
from __future__ import annotations

from pathlib import Path


def configure(parser) -> None:
    parser.add_argument("--warehouse", required=True, type=Path, help="the warehouse DuckDB file to check")
    parser.add_argument("--wait", action="store_true",
                        help="wait for a run holding the warehouse instead of exiting with 4")


def command(args) -> int:
    from pci.core.locking import command_under_lock
    from pci.core.preflight import check_before_writing
    from pci.core.terminal import for_terminal

    warehouse = Path(args.warehouse)
    status, result = command_under_lock(warehouse, args.wait,
                                        lambda: check_before_writing(warehouse, thorough=True))
    if result is None:
        return status
    seconds = sum(result.seconds.get(k, 0.0) for k in ("file", "scan"))
    print(for_terminal(f"{warehouse}: intact: {result.file_bytes:,} bytes, {result.tables} tables, "
                       f"{result.blocks:,} blocks; every data block and the primary-key index paths "
                       f"read in {seconds:.1f} s"))
    return 0
