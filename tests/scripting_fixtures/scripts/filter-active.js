// The active members of context['list-members'] (GitHub's org members list), as {login, id}.
// A member is active unless the upstream says otherwise (`active: false`, or a suspended account).

const members = context["list-members"];
result = where(members, (m) => m.active !== false && !m.suspended_at).map((m) => pick(m, ["login", "id"]));
