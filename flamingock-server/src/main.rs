//! `flamingock-server`: `serve`, and `token create|list|revoke` on the server's database.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flamingock_client::wire::Role;
use flamingock_server::{ServerDb, tokens};

/// Where the database URL comes from when `--database-url` is not given.
const DATABASE_URL_ENV: &str = "FLAMINGOCK_SERVER_DATABASE_URL";

/// The Flamingock server: one audit store and lock service for many services and environments.
#[derive(Parser)]
#[command(name = "flamingock-server", version)]
struct Cli {
    /// The server's database: sqlite://<file> (created if missing) or postgres://…
    #[arg(
        long,
        global = true,
        env = DATABASE_URL_ENV,
        default_value = "sqlite://flamingock-server.db",
        hide_env_values = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the API.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Manages tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Makes a token and prints it, once.
    Create {
        /// The service it is for (not needed for an unscoped admin token).
        #[arg(long)]
        service: Option<String>,
        /// The environment it is for.
        #[arg(long)]
        environment: Option<String>,
        /// runner, reader, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Lists the tokens (never the tokens themselves).
    List,
    /// Revokes a token by its id.
    Revoke {
        /// The id `token list` shows.
        id: String,
    },
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::parse(name)
        .ok_or_else(|| format!("{name:?} is not a role: runner, reader, operator or admin"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", flamingock_core::model::error_chain(&*error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let db = ServerDb::open(&cli.database_url).await?;
    match cli.command {
        Command::Serve { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let address = listener.local_addr()?;
            tracing::info!(%address, database = %flamingock_sqlx::redact_url(&cli.database_url), "serving the Flamingock API");
            // A line the tests (and scripts) can wait for.
            println!("listening on {address}");
            flamingock_server::serve(db, listener).await?;
        }
        Command::Token { command } => match command {
            TokenCommand::Create {
                service,
                environment,
                role,
            } => {
                let created =
                    tokens::create(&db, role, service.as_deref(), environment.as_deref()).await?;
                eprintln!(
                    "created token {} ({}); it is shown once, store it now:",
                    created.info.id, created.info.role
                );
                println!("{}", created.token);
            }
            TokenCommand::List => {
                println!(
                    "{:<12}  {:<12}  {:<8}  {:<30}  {:<20}  {:<25}  revoked",
                    "id", "prefix", "role", "service", "environment", "created"
                );
                for t in tokens::list(&db).await? {
                    println!(
                        "{:<12}  {:<12}  {:<8}  {:<30}  {:<20}  {:<25}  {}",
                        t.id,
                        t.prefix,
                        t.role.as_str(),
                        t.service.as_deref().unwrap_or("*"),
                        t.environment.as_deref().unwrap_or("*"),
                        t.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        t.revoked_at
                            .map(|r| r.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_else(|| "-".to_owned())
                    );
                }
            }
            TokenCommand::Revoke { id } => {
                let info = tokens::revoke(&db, &id).await?;
                println!("revoked token {} ({})", info.id, info.role);
            }
        },
    }
    Ok(())
}
