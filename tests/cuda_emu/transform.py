# Rewrites kernel<<<grid, block, smem, stream>>>(args) as ::emu::launch(kernel, grid, block, smem, stream, args) and
# drops the CUB include (emu.h has a host BlockReduce), so a .cu file compiles as host C++ under emu.h.
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r'([\w:]+(?:<[^<>;]*>)?)<<<(.*?)>>>\(', r'::emu::launch(\1, \2, ', src, flags=re.S)
src = src.replace("#include <cub/block/block_reduce.cuh>", "")
open(sys.argv[2], "w").write("#include \"emu.h\"\n" + src)
