"""How good a swap looks, in numbers and in pictures.

- `corpus`: the realism corpus, built at run time from the licence-clean portraits that ship
  with scikit-image and in sample_photos/: templates with real motion, hands, a microphone and hair
  strands drawn over the face with their known masks, head turns rendered from the face mesh,
  hard side light, an out-of-focus background face, and selfies of several (synthetic) skin
  tones and sizes, each with its ground truth.
- `metrics`: what is measured on one swap against that truth (occluder pixels kept,
  sharpness, skin tone, lighting side, seam, identity).
- `benchmark`: every case through a real swap job, scored (`memeswap bench --quality`).
- `contact_sheet`: template frames above output frames, hardest frames first in mind
  (`memeswap inspect`).
"""
