return await Pipeline.Jobs.Cli.Commands.InvokeAsync(args);
