"""Images per second of timm's ViT (its fused SDPA attention), timed like bench/vit_throughput.cpp
(medians over rounds, after warm-up); prints one JSON line. With `graph` (CUDA only) the forward is
captured once as a CUDA graph (torch.cuda.graph) and replayed, as the C++ side does.

    python bench/vit_timm.py MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS [graph]]
"""
import json
import statistics
import sys
import time

import timm
import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    name, batch, dtype_name, device = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    iters = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    graphed = len(sys.argv) > 6
    if graphed and (sys.argv[6] != "graph" or device != "cuda"):
        sys.exit(f"vit_timm.py: expected `graph` after ITERS, on cuda; got {sys.argv[6]!r} on {device}")
    dtype = DTYPES[dtype_name]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).to(device, dtype).eval()
    cfg = model.pretrained_cfg
    images = torch.randn(batch, 3, *cfg["input_size"][1:], device=device, dtype=dtype)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        for _ in range(3):
            model(images)
        sync()
        forward = lambda: model(images)
        if graphed:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(images)
            forward = graph.replay
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(iters):
                forward()
            sync()
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"impl": f"timm {timm.__version__}", "model": name, "batch": batch, "dtype": dtype_name,
                      "device": device, "graph": graphed, "threads": torch.get_num_threads(),
                      "images_per_second": round(batch * iters / statistics.median(seconds), 1)}))


if __name__ == "__main__":
    main()
