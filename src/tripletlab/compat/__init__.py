"""Drop-in replacements for the losses of the projects tripletlab replaces.

* :mod:`tripletlab.compat.tfa`: TensorFlow Addons' ``TripletSemiHardLoss`` / ``TripletHardLoss``.
* :mod:`tripletlab.compat.omoindrot`: ``batch_all_triplet_loss`` / ``batch_hard_triplet_loss``.
* :mod:`tripletlab.compat.triplet_tools`: triplet-tools' loss factories.

Migrating is one import line; names, signatures and values are the originals'. The documented
deviations: no NaN for a batch without positive pairs (TF Addons issues #1676, #2447), a stable
soft margin, O(B^2) memory instead of O(B^3), and a negative ``margin`` is refused (a
negative ``semi_margin`` is accepted, as triplet-tools does).
"""
