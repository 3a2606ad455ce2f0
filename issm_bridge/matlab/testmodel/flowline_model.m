function md = flowline_model(opts)
%FLOWLINE_MODEL  A small grounded glacier flowline in ISSM's md field names (the test model).
%
%   md = flowline_model() or flowline_model(opts) builds a struct with the fields an ISSM
%   model has for the same quantities, so the bridge drives it exactly as it drives ISSM:
%     md.mesh.x, md.mesh.y, md.mesh.numberofvertices       vertices (m), y = 0
%     md.geometry.bed, .base, .thickness, .surface         (m); grounded: base = bed
%     md.initialization.vx, .vy                            velocity (m/yr); vy = 0
%     md.friction.coefficient                              C, basal stress C^2 u (Pa)
%     md.materials.rheology_B, .rheology_n, .rho_ice       Glen's law (Pa yr^(1/n))
%     md.constants.g, md.smb.mass_balance (m/yr)
%     md.stressbalance.spcvx, md.masstransport.spcthickness  inflow conditions at x = 0
%     md.timestepping.start_time, .final_time, .time_step  (yr)
%     md.inversion.*, md.cluster.np, md.miscellaneous.name, md.results
%   Solve it with flowline_solve(md, 'Transient') or flowline_solve(md, 'Stressbalance').
%
%   opts (all optional): n (vertices, 41), length (m, 40e3), time_step (yr, 1),
%   inflow_velocity (m/yr, 80), inflow_thickness (m, 600), friction (mean C, 20).
  if nargin < 1 || ~isstruct(opts)
    opts = struct();
  end
  n = option(opts, 'n', 41);
  L = option(opts, 'length', 40e3);
  x = linspace(0, L, n)';
  H0 = option(opts, 'inflow_thickness', 600);

  md.mesh.x = x;
  md.mesh.y = zeros(n, 1);
  md.mesh.numberofvertices = n;
  md.geometry.bed = 200 - 5e-3 * x;
  md.geometry.base = md.geometry.bed;
  md.geometry.thickness = H0 - 300 * x / L;
  md.geometry.surface = md.geometry.base + md.geometry.thickness;
  md.friction.coefficient = option(opts, 'friction', 20) + 4 * sin(2 * pi * x / L);
  md.materials.rheology_B = 2.4e5;          % Pa yr^(1/3), temperate ice
  md.materials.rheology_n = 3;
  md.materials.rho_ice = 917;
  md.constants.g = 9.81;
  md.smb.mass_balance = 0.5 - 2.0 * x / L;  % accumulation upstream, ablation downstream
  md.stressbalance.spcvx = nan(n, 1);
  md.stressbalance.spcvx(1) = option(opts, 'inflow_velocity', 80);
  md.stressbalance.restol = 1e-9;
  md.stressbalance.maxiter = 100;
  md.masstransport.spcthickness = nan(n, 1);
  md.masstransport.spcthickness(1) = H0;
  md.masstransport.min_thickness = 1;
  md.timestepping.start_time = 0;
  md.timestepping.final_time = 1;
  md.timestepping.time_step = option(opts, 'time_step', 1);
  md.inversion.iscontrol = 0;
  md.inversion.control_parameters = {'FrictionCoefficient'};
  md.inversion.cost_functions = 101;
  md.inversion.cost_functions_coefficients = ones(n, 1);
  md.inversion.min_parameters = ones(n, 1);
  md.inversion.max_parameters = 200 * ones(n, 1);
  md.inversion.maxiter = 20;
  md.inversion.vx_obs = nan(n, 1);
  md.inversion.vy_obs = nan(n, 1);
  md.inversion.vel_obs = nan(n, 1);
  md.cluster.np = 1;
  md.miscellaneous.name = 'flowline';
  md.initialization.vx = zeros(n, 1);
  md.initialization.vy = zeros(n, 1);
  md.results = struct();
  md.initialization.vx = flowline_ssa(md, md.geometry.thickness, md.friction.coefficient, 100 * ones(n, 1));
end

function v = option(opts, name, default)
  if isfield(opts, name)
    v = opts.(name);
  else
    v = default;
  end
end
