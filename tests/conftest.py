import torch

torch.set_num_threads(1)  # tests run two workers on two cores
