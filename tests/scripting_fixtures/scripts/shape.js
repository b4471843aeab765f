// The numbers of context.items doubled, and their total: data shaping JSONPath cannot say.
const doubled = context.items.map((n) => n * 2);
result = { doubled, total: doubled.reduce((a, b) => a + b, 0), factor: context.factor };
