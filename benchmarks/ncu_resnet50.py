"""One ResNet-50 FP16 batch-8 forward (as the bundled sample runs it) for Nsight Compute's per-kernel counters.

    ncu --profile-from-start off --clock-control none --csv \
        --metrics gpu__time_duration.sum,sm__ops_path_tensor_src_fp16_dst_fp32.sum,\
sm__ops_path_tensor_src_fp16_dst_fp16.sum,dram__bytes.sum \
        python benchmarks/ncu_resnet50.py > ncu.csv

Warm-up forwards run before cudaProfilerStart, so only the measured forward's kernels are profiled.
The model, precision and layout match `data/samples/resnet50_fp16_b8` (torchvision, random weights, NCHW).
"""

import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.resnet50(weights=None).cuda().eval().half()
x = torch.randn(8, 3, 224, 224, device="cuda").half()
with torch.inference_mode():
    for _ in range(3):
        model(x)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    model(x)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
