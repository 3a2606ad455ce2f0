function fdassim_forecast(in_path, out_path, cycle, member, token)
%FDASSIM_FORECAST  One member's forecast: an ISSM transient from t0 to t1.
%
%   Reads the member file IN_PATH (which must belong to CYCLE and MEMBER), sets up md
%   (fdassim_prepare), runs feval(job.solver, md, 'Transient') -- ISSM's
%   solve(md, 'Transient') or the test model's flowline_solve -- from md.timestepping
%   .start_time = t0 to final_time = t1, and writes the state at t1 to OUT_PATH, tagged
%   with the cycle, member and TOKEN of the request. A field listed in job.results takes
%   the last TransientSolution's result of that name (Thickness, Surface, Base, Vx, Vy);
%   any other field is read back from its md path.
  [md, s] = fdassim_prepare(in_path, cycle, member);
  md.timestepping.start_time = s.t0;
  md.timestepping.final_time = s.t1;
  md = feval(s.job.solver, md, 'Transient');
  if ~fdassim_has(md.results, 'TransientSolution') || isempty(md.results.TransientSolution)
    error('issm_bridge:results', 'member %d, cycle %d: the transient returned no TransientSolution', ...
          member, cycle);
  end
  sol = md.results.TransientSolution(end);
  if isfield(sol, 'time') && abs(sol.time - s.t1) > 1e-6 * max(1, abs(s.t1))
    error('issm_bridge:time', ['member %d, cycle %d: the transient ended at t = %g, not %g: choose ' ...
          'md.timestepping.time_step dividing the interval'], member, cycle, sol.time, s.t1);
  end
  out = fdassim_output(s, token);
  names = fieldnames(s.fields);
  for k = 1:numel(names)
    name = names{k};
    if isfield(s.job.results, name)
      result = s.job.results.(name);
      if ~isfield(sol, result)
        error('issm_bridge:results', ['member %d, cycle %d: TransientSolution has no %s (for field %s); ' ...
              'add it to md.transient.requested_outputs'], member, cycle, result, name);
      end
      value = sol.(result);
    else
      value = fdassim_get(md, s.paths.(name));
    end
    if numel(value) ~= numel(s.fields.(name))
      error('issm_bridge:size', 'member %d, cycle %d: field %s has %d values after the transient, %d before', ...
            member, cycle, name, numel(value), numel(s.fields.(name)));
    end
    out.fields.(name) = double(value(:));
  end
  fdassim_save(out_path, out);
end
