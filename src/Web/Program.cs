using Pipeline.Jobs.Engine;
using Pipeline.Web;

var builder = WebApplication.CreateBuilder(args);
builder.AddPipelineWeb();

var app = builder.Build();
app.UsePipelineWeb();
return AbandonedWork.Exit(await app.RunPipelineWebAsync());

/// <summary>Entry point, visible to the integration tests' WebApplicationFactory.</summary>
public partial class Program;
