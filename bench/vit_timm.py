"""Images per second of timm's ViT (its fused SDPA attention), timed like bench/vit_throughput.cpp
(medians over rounds, after warm-up); prints one JSON line.

    python bench/vit_timm.py MODEL BATCH fp32|fp16|bf16 cpu|cuda [ITERS]
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
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(iters):
                model(images)
            sync()
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"impl": f"timm {timm.__version__}", "model": name, "batch": batch, "dtype": dtype_name,
                      "device": device, "threads": torch.get_num_threads(),
                      "images_per_second": round(batch * iters / statistics.median(seconds), 1)}))


if __name__ == "__main__":
    main()
