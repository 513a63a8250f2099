"""Pretraining images/s of the official MAE (facebookresearch/mae) or MAE-LUT (naver-ai/lut) code:
its own train_one_epoch (engine_pretrain.py / engine_lut.py: fp16 autocast, NativeScaler with the
gradient norm, the per-step loss sync, LUT's EMA teacher) over batches of random images that are
already in memory, so that no data loading is timed. The model is built from the configuration
sparsescope's bench prints (`sparsescope-bench-mae`), with the optimizer of main_pretrain.py /
main_lut.py (AdamW, betas (0.9, 0.95), no decay on biases and norms). Prints one JSON line;
bench/mae.sh runs it beside our trainer. The checkouts are given on the command line (never copied
into this repository):

    python bench/mae_official.py --mae /tmp/mae --lut /tmp/lut --task mae-lut --config CONFIG_JSON \
        --batch 256 --steps 40 --device cuda
"""
import argparse
import contextlib
import io
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
from mae_official import TORCH_SIX, load_models_mae, load_official  # noqa: E402


def param_groups(model, weight_decay):
    """timm's add_weight_decay, which main_pretrain.py and main_lut.py call: no decay on 1-D
    parameters (biases, norms) and on tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def build(args, config):
    common = dict(img_size=config["img_size"], patch_size=config["patch_size"], in_chans=config["in_chans"],
                  embed_dim=config["embed_dim"], depth=config["depth"], num_heads=config["num_heads"],
                  decoder_embed_dim=config["decoder_embed_dim"], decoder_depth=config["decoder_depth"],
                  decoder_num_heads=config["decoder_num_heads"], mlp_ratio=config["mlp_ratio"],
                  norm_layer=partial(nn.LayerNorm, eps=config["norm_eps"]), norm_pix_loss=config["norm_pix_loss"])
    if args.task == "mae":
        model = load_models_mae(args.mae).MaskedAutoencoderViT(**common)
        engine = load_official(args.mae, "engine_pretrain", stubs=[TORCH_SIX])
        return model, engine, sys.modules["util.misc"], None
    models_lut = load_official(args.lut, "models.models_lut",
                               stubs=[("util.utils_dino", {"trunc_normal_": nn.init.trunc_normal_})])
    model = models_lut.MaskedAutoencoderViT_LUT(**common, depth_head=config["depth_head"],
                                                depth_pred=config["depth_pred"], head_mlp_dim=config["head_mlp_dim"])
    engine = load_official(args.lut, "engines.engine_lut", stubs=[TORCH_SIX])
    misc = sys.modules["util.misc"]
    ema_sched = sys.modules["util.model_ema_sched"]
    return model, engine, misc, ema_sched


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mae", required=True, help="a checkout of facebookresearch/mae")
    p.add_argument("--lut", required=True, help="a checkout of naver-ai/lut")
    p.add_argument("--task", choices=["mae", "mae-lut"], required=True)
    p.add_argument("--config", required=True, help="the model configuration as JSON (sparsescope's MAE card)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=40, help="steps timed, after as many warm-up steps")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    config = json.loads(args.config)
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True  # as main_pretrain.py and main_lut.py run
    with contextlib.redirect_stdout(sys.stderr):  # what timm and the checkouts print on import
        model, engine, misc, ema_sched = build(args, config)
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, 0.05), lr=1.5e-4, betas=(0.9, 0.95))
    loss_scaler = misc.NativeScalerWithGradNormCount()
    if device.type != "cuda":  # the engines are written for CUDA: on the CPU (a smoke test) nothing
        torch.cuda.synchronize = lambda *a, **k: None  # is to be waited for, and the disabled scaler
        state_dict = loss_scaler.state_dict            # has no scale for engine_lut.py to log
        loss_scaler.state_dict = lambda: {"scale": 1.0, **state_dict()}
    run = argparse.Namespace(accum_iter=1, mask_ratio=0.75, lr=1.5e-4, min_lr=0.0, warmup_epochs=1, epochs=100,
                             w_mae=1.0, w_bc=1.0)
    size = (args.batch, config["in_chans"], config["img_size"], config["img_size"])
    labels = torch.zeros(args.batch, dtype=torch.long)
    extra = []
    if args.task == "mae":
        batches = [(torch.randn(size), labels) for _ in range(args.steps)]
    else:
        batches = [([torch.randn(size), torch.randn(size)], labels) for _ in range(args.steps)]
        decay = np.full(4 * args.steps, 0.996)  # main_lut.py's cosine schedule; its values do not change the cost
        extra = [ema_sched.ModelEma_sched(model, decay=decay, device="")]
    if device.type == "cuda":
        batches = [([s.pin_memory() for s in x] if isinstance(x, list) else x.pin_memory(), y) for x, y in batches]
    seconds = []
    for epoch in range(2):  # the first is the warm-up
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the engines' progress lines
            engine.train_one_epoch(model, batches, optimizer, device, epoch, loss_scaler, *extra, log_writer=None,
                                   args=run)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"impl": "official", "task": args.task, "model": config["name"], "batch": args.batch,
                      "dtype": "fp16" if device.type == "cuda" else "fp32", "device": str(device),
                      "images_per_second": round(args.steps * args.batch / seconds[1], 1)}))


if __name__ == "__main__":
    main()
