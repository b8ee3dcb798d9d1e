return Pipeline.Jobs.Hosting.AbandonedWork.Exit(await Pipeline.Jobs.Cli.Commands.InvokeAsync(args));
