n = context["n"]
if n < 0:
    raise ValueError("reading " + str(n) + " is negative")
result = n
