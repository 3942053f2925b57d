"""Pipeline stages, one file each: autoencoder -> operator -> diffusion -> consistency."""
