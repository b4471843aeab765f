"""Script steps (`type: script`, semantics §6.6): JavaScript and Python run out of process.

Each language runs in worker processes (`worker.py`) started on the first script call of a
capability and kept warm: JavaScript in a V8 isolate (mini-racer, no Node: no `require`,
`fetch`, `process`, timers) whose intrinsics are frozen so that nothing one call leaves
behind is seen by the next; Python compiled by RestrictedPython (no `open`, no dunder names,
imports from a short allow-list only) and executed with guarded builtins. The workers run
with an empty environment, resource limits (memory, no file writes, few descriptors) and are
killed when a step passes its timeout; the parent only sends JSON and reads JSON back.

Why processes: V8 aborts its whole process on a heap it cannot grow and places array buffers
outside the heap limit, and Python has no in-process sandbox; a worker can be limited by the
kernel and replaced when it dies, the server never is.
"""
