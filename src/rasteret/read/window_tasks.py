"""Reading a window read's tasks: every task's source window fetched in one concurrent
batch through the store, then written or warped on the decode pool as soon as its pixels
arrive (:func:`read_tasks`), so warps overlap the reads still in flight. A window that is
only decoded to be written elsewhere takes a buffer an earlier window of the same read
gave back (:class:`~rasteret.read.window_buffers.WindowBuffers`). Used by
:class:`rasteret.read.window.WindowReader`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rasteret.read.grid_tasks import GridTask, Output, TaskPlanner, copy_target, write_task
from rasteret.read.stacks import StoreIndex
from rasteret.read.window_io import read_sources


async def read_tasks(
    index: StoreIndex,
    tasks: Sequence[GridTask],
    planner: TaskPlanner,
    dtype: np.dtype,
    outputs: Sequence[Output | None],
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Every task's window, read concurrently and warped on the decode pool as soon as
    its pixels arrive (warps overlap the reads still in flight). A task with an
    :class:`Output` writes its pixels, validity and fill there (``None`` returned);
    the others return ``(values, valid)`` on the grid (pasted tasks: as read)."""
    import asyncio

    from rasteret.store.window_read import decode_pool

    loop = asyncio.get_running_loop()
    pool = decode_pool()

    # a window that is only read to be written elsewhere is decoded into a buffer an
    # earlier task gave back (one returned as the task's result is not)
    pairs = list(zip(tasks, outputs, strict=True))
    boxes = [None if o is None else copy_target(t, o.data) for t, o in pairs]
    reused = [
        box is None and (o is not None or t.paste is None)
        for (t, o), box in zip(pairs, boxes, strict=True)
    ]
    buffers = None
    if any(reused):
        from rasteret.read.window_buffers import WindowBuffers

        buffers = WindowBuffers()

    async def one(i: int) -> tuple[np.ndarray, np.ndarray] | None:
        task, output, box = tasks[i], outputs[i], boxes[i]
        pooled = buffers if reused[i] else None
        # a nearest warp into its own output derives validity from the values it gathers
        gathered = output is not None and task.paste is None and task.resampling == "nearest"
        unwanted = output is not None and not output.validity  # a copy that holds its fill
        ((values, ok),) = await read_sources(
            index,
            [(task.source, task.window)],
            with_valid=not (gathered or unwanted),
            outputs=None if box is None else [box],
            allocate=None if pooled is None else pooled.take,
        )
        valid = None if ok is None else ok[0]
        try:
            if output is not None:
                return await loop.run_in_executor(
                    pool, write_task, planner, task, values[0], valid, output
                )
            assert valid is not None
            if task.paste is not None:
                return values[0], valid
            return await loop.run_in_executor(pool, planner.warp, task, values[0], valid, dtype)
        finally:
            if pooled is not None:  # written (or failed): nothing refers to the window
                pooled.give(values)

    return list(await asyncio.gather(*(one(i) for i in range(len(tasks)))))
