# The total amount of the orders the previous call step listed (context['list-orders']).
result = sum(order["amount"] for order in context["list-orders"])
