// Helpers for filter-active.js, evaluated first in the same scope (script-step.yml `dependencies`).

function where(items, predicate) {
  return (Array.isArray(items) ? items : []).filter(predicate);
}

function pick(item, keys) {
  const picked = {};
  for (const key of keys) {
    if (item[key] !== undefined) picked[key] = item[key];
  }
  return picked;
}
