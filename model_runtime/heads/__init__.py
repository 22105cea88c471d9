"""Head models: the numpy-only `.npz` contract, the FLAME loader and the bundled open head."""
