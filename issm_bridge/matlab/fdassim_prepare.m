function [md, s] = fdassim_prepare(in_path, cycle, member)
%FDASSIM_PREPARE  The member's md: the set-up model with the member file's fields written in.
%
%   Checks the file's cycle and member, builds (or reuses) the model of s.job.setup,
%   writes every field at its md path, and sets the ISSM ranks (md.cluster.np) and a run
%   name naming the cycle and member.
  s = fdassim_read_member(in_path, cycle, member);
  md = fdassim_apply(fdassim_model(s.job), s);
  if s.job.np > 0 && fdassim_has(md, 'cluster') && fdassim_has(md.cluster, 'np')
    md.cluster.np = s.job.np;
  end
  if fdassim_has(md, 'miscellaneous') && fdassim_has(md.miscellaneous, 'name')
    md.miscellaneous.name = sprintf('fdassim_c%d_m%d', cycle, member);
  end
end
