# 2 GB in 1 MB strings.
blocks = [str(i) * (1 << 20) for i in range(2048)]
result = len(blocks)
