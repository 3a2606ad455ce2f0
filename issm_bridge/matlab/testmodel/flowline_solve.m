function md = flowline_solve(md, solution)
%FLOWLINE_SOLVE  The test model's solve(md, solution), with ISSM's results layout.
%
%   md = flowline_solve(md, 'Transient') steps from md.timestepping.start_time to
%   final_time (whole steps no longer than time_step): each step advances the mass
%   balance dH/dt + d(uH)/dx = smb (upwind) with the velocity of the step's starting
%   geometry, then solves the velocity of the new geometry (flowline_ssa).
%   md.results.TransientSolution(k) holds time, step, Vx, Vy, Vel, Thickness, Surface,
%   Base after step k, velocity and geometry consistent (ISSM's own transient reports the
%   velocity the step started with).
%
%   md = flowline_solve(md, 'Stressbalance') solves the velocity; with
%   md.inversion.iscontrol = 1 it first inverts md.friction.coefficient
%   (flowline_invert). md.results.StressbalanceSolution holds Vx, Vy, Vel and, after an
%   inversion, FrictionCoefficient and the cost J of each iteration.
  switch solution
    case 'Transient'
      md = transient(md);
    case 'Stressbalance'
      md = stressbalance(md);
    otherwise
      error('flowline:solution', 'flowline_solve: unknown solution ''%s'' (Transient or Stressbalance)', solution);
  end
end

function md = transient(md)
  t0 = md.timestepping.start_time;
  t1 = md.timestepping.final_time;
  if ~(t1 > t0)
    error('flowline:time', 'final_time (%g) must be after start_time (%g)', t1, t0);
  end
  nsteps = ceil((t1 - t0) / md.timestepping.time_step - 1e-9);
  dt = (t1 - t0) / nsteps;
  x = md.mesh.x(:);
  H = md.geometry.thickness(:);
  u = md.initialization.vx(:);
  C = md.friction.coefficient(:);
  a = md.smb.mass_balance(:);
  inflow = md.masstransport.spcthickness(1);
  Hmin = md.masstransport.min_thickness;
  if any(~isfinite(H)) || any(H <= 0)
    error('flowline:thickness', 'the thickness must be positive and finite (min %g)', min(H));
  end
  solution = struct('time', {}, 'step', {}, 'Vx', {}, 'Vy', {}, 'Vel', {}, ...
                    'Thickness', {}, 'Surface', {}, 'Base', {});
  u = flowline_ssa(md, H, C, u);
  for k = 1:nsteps
    H = mass_transport(H, u, a, x, dt, inflow, Hmin);
    u = flowline_ssa(md, H, C, u);
    base = md.geometry.bed(:);
    solution(k) = struct('time', t0 + k * dt, 'step', k, 'Vx', u, 'Vy', zeros(size(u)), ...
                         'Vel', abs(u), 'Thickness', H, 'Surface', base + H, 'Base', base);
  end
  md.results.TransientSolution = solution;
end

function H = mass_transport(H, u, a, x, dt, inflow, Hmin)
  % upwind finite volumes for u > 0, in sub-steps that keep the Courant number below 0.9
  dx = diff(x);
  nsub = max(1, ceil(max(abs(u(2:end)) * dt ./ dx) / 0.9));
  tau = dt / nsub;
  for j = 1:nsub
    q = u .* H;
    H(2:end) = H(2:end) - tau * (q(2:end) - q(1:end - 1)) ./ dx + tau * a(2:end);
    H(1) = inflow;
    H = max(H, Hmin);
  end
end

function md = stressbalance(md)
  C = md.friction.coefficient(:);
  sol = struct();
  if md.inversion.iscontrol
    [C, J] = flowline_invert(md);
    sol.FrictionCoefficient = C;
    sol.J = J;
  end
  u = flowline_ssa(md, md.geometry.thickness(:), C, md.initialization.vx(:));
  sol.Vx = u;
  sol.Vy = zeros(size(u));
  sol.Vel = abs(u);
  md.results.StressbalanceSolution = sol;
end
