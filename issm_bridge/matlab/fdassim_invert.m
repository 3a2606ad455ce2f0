function fdassim_invert(in_path, out_path, cycle, member, token)
%FDASSIM_INVERT  Invert one member's friction coefficient from its (analysed) velocity.
%
%   ISSM's friction inversion (ICESEE section 4.2.2): md.inversion.iscontrol = 1 with
%   the control FrictionCoefficient bounded by [min, max], the cost functions 101
%   (SurfaceAbsVelMisfit), 102 (SurfaceRelVelMisfit) and 501 (DragCoefficientAbsGradient,
%   the Tikhonov term) weighted by job.inversion.absolute, .relative and .tikhonov, and
%   the member's vx, vy as the observed velocity; then feval(job.solver, md,
%   'Stressbalance'). The inverted coefficient replaces the member's friction field; every
%   other field comes back unchanged.
  [md, s] = fdassim_prepare(in_path, cycle, member);
  inv = s.job.inversion;
  nv = numel(s.fields.(inv.field));
  weights = [inv.absolute, inv.relative, inv.tikhonov];
  codes = [101, 102, 501];
  used = weights > 0;
  md.inversion.iscontrol = 1;
  md.inversion.control_parameters = {'FrictionCoefficient'};
  md.inversion.cost_functions = codes(used);
  md.inversion.cost_functions_coefficients = ones(nv, 1) * weights(used);
  md.inversion.min_parameters = inv.min * ones(nv, 1);
  md.inversion.max_parameters = inv.max * ones(nv, 1);
  md.inversion.vx_obs = md.initialization.vx;
  md.inversion.vy_obs = md.initialization.vy;
  md.inversion.vel_obs = sqrt(md.initialization.vx .^ 2 + md.initialization.vy .^ 2);
  % the iteration limit under the name of the inversion class in use
  if fdassim_has(md.inversion, 'maxiter')          % m1qn3inversion, the test model
    md.inversion.maxiter = inv.iterations;
  end
  if fdassim_has(md.inversion, 'maxsteps')         % m1qn3inversion
    md.inversion.maxsteps = inv.iterations;
  end
  if fdassim_has(md.inversion, 'nsteps')           % ISSM's default inversion class
    md.inversion.nsteps = inv.iterations;
    md.inversion.maxiter_per_step = 10 * ones(inv.iterations, 1);
    md.inversion.gradient_scaling = 50 * ones(inv.iterations, 1);
    md.inversion.step_threshold = 0.99 * ones(inv.iterations, 1);
  end
  md = feval(s.job.solver, md, 'Stressbalance');
  C = md.results.StressbalanceSolution.FrictionCoefficient;
  if numel(C) ~= nv
    error('issm_bridge:size', 'member %d, cycle %d: the inversion returned %d coefficients for %d vertices', ...
          member, cycle, numel(C), nv);
  end
  out = fdassim_output(s, token);
  out.paths = s.paths;  % the forecast reads this file next
  out.job = s.job;
  out.fields = s.fields;
  out.fields.(inv.field) = double(C(:));
  fdassim_save(out_path, out);
end
