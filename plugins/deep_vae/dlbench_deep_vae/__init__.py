"""The paper's convolutional β-VAE and λβ-VAE as a dlbench plugin, trained as stacks of independent solutions."""
