# Environment for running fdassim's tests and demos (sourced by scripts/test.sh and demo.sh).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Firedrake initialises PETSc with the process's arguments; pytest's own options are not PETSc's.
export PETSC_OPTIONS="${PETSC_OPTIONS:--options_left no}"
# OpenMPI in containers and small VMs: let 2 ranks run on whatever cores there are.
export OMPI_MCA_rmaps_base_oversubscribe=1
export MPLBACKEND=Agg
