# A name an earlier call of this script defined is not defined in the next call.
try:
    seen = counter
except NameError:
    seen = None
counter = 1
result = {"seen": seen}
