// context.kind picks what JSON cannot carry.
const cycle = {};
cycle.self = cycle;
const values = { function: { f: function () {} }, cycle: cycle, nan: { v: 0 / 0 }, nothing: undefined };
result = values[context.kind];
