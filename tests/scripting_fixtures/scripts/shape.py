# The numbers of context["items"] doubled, and their total.
doubled = [n * 2 for n in context["items"]]
result = {"doubled": doubled, "total": sum(doubled), "factor": context.get("factor")}
