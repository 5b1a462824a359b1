"""Distillation, when a run names a teacher: synthetic rows labelled by the teacher join each
split's training rows; students are scored for fidelity to the teacher."""
