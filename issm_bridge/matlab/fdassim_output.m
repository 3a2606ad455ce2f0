function out = fdassim_output(s, token)
%FDASSIM_OUTPUT  The header of the reply file to member file S (same cycle, member, times).
  out.fdassim_format = 1;
  out.cycle = s.cycle;
  out.member = s.member;
  out.t0 = s.t0;
  out.t1 = s.t1;
  out.token = token;
  out.fields = struct();
end
