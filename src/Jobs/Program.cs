// libtorch warns once per convolution on CPUs without NNPACK support; the warning is noise for users.
if (Environment.GetEnvironmentVariable("TORCH_CPP_LOG_LEVEL") is null) Environment.SetEnvironmentVariable("TORCH_CPP_LOG_LEVEL", "ERROR");
return await Pipeline.Jobs.Cli.Commands.InvokeAsync(args);
