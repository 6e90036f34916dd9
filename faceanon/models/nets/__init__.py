"""The seed papers' networks in PyTorch (issue 6): CIAGAN, the FIT identity transformer and
CFA-Net. Each module holds its networks, losses and one training step; `train.py` drives
training for all three; the anonymizers that use shipped checkpoints live in
anonymize/networks.py. Architectures follow the papers' official code where it exists
(CIAGAN: dvl-tum/ciagan; FIT: laoreja/face-identity-transformer); CFA-Net has no public code,
so its layout follows the paper's description on the Swapping Autoencoder / StyleGAN2 pattern
it describes (see cfanet.py)."""
