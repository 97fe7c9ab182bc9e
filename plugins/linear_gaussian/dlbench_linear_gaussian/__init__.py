"""dlbench plugin: the exact linear-Gaussian β-VAE / λβ-VAE of "Mutual Information Collapse
Explains Disentanglement Failure in β-VAEs", with its fixed-point and AdamW solvers."""
