use flamingock::prelude::*;

#[derive(Default)]
struct CreateTable<T>(std::marker::PhantomData<T>);

#[change_unit(id = "create-table", order = "0001", author = "ana")]
impl<T> CreateTable<T> {
    #[execution]
    fn execute(&self) {}
}

fn main() {}
